"""Telling the data team (e-mail through Airflow's SMTP provider, a webhook): counts, steps and
safe reasons only, never personal data."""
