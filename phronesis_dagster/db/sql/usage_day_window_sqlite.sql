created_at >= :wide_start AND created_at < :wide_end
AND datetime(created_at) >= :start_text AND datetime(created_at) < :end_text
