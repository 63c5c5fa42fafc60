"""The store compiled into one immutable object the edge serves from (docs/architecture.md, "The pieces")."""

from originlock.snapshot.model import ClientCert, DeploymentPki, Route, Snapshot, SslMode

__all__ = ["ClientCert", "DeploymentPki", "Route", "Snapshot", "SslMode"]
