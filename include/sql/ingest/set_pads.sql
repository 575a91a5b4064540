SELECT set_config(%s, %s, true), set_config(%s, %s, true)
