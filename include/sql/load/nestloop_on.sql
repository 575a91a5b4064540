SET LOCAL enable_nestloop = on
