SELECT COUNT(*) FROM activity_log_default
