"""Scale-out: local servers, the event stream, Spark batch jobs."""
