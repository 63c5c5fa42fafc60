"""Test helpers shipped with the package: throwaway PKI, tool requirements, process fixtures."""
