SET LOCAL enable_nestloop = off
