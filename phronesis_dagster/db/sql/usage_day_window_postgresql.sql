created_at >= :start AND created_at < :end
