"""The edge data plane: listeners, visitor TLS, the per-connection HTTP/1.1 loop, proxying to origins.

Entry points: :func:`originlock.edge.runtime.run_edge`, :class:`originlock.edge.config.EdgeConfig`,
:func:`originlock.edge.config.add_edge_arguments`, :func:`originlock.edge.config.edge_config_from_args`.
"""
