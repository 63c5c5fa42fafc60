"""The store compiled into one immutable object the edge serves from (DESIGN.md "snapshot")."""

from originlock.snapshot.model import ClientCert, DeploymentPki, Route, Snapshot, SslMode

__all__ = ["ClientCert", "DeploymentPki", "Route", "Snapshot", "SslMode"]
