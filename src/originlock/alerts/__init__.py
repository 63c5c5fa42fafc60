"""Certificate expiry notifications: which alerts are due (pure) and how they are delivered (server/)."""
