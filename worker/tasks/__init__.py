"""One module per job kind; server.jobs.JOB_KINDS names each handler ("module:function")."""
