"""Talking to origins: peers and pool keys, TLS contexts with AOP client certificates, the keep-alive
pool (pure state + thin async shell) and the connector that maps socket/TLS failures to 521-526."""
