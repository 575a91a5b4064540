SELECT cursor FROM routing.sync_cursor WHERE feed = %(feed)s
