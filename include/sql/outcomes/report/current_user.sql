SELECT current_user AS u
