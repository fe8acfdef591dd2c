-- The console's generation page finds a generation's audit records by its id.
CREATE INDEX audit_log_generation ON audit_log(generation_id);
