SELECT * FROM release.build_info
