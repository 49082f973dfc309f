"""Model passes (installed as ``andactl.passes``): one module per pass, registered on import."""
