"""The DCC operator web console (server-rendered pages under /console of the DUIS gateway)."""
