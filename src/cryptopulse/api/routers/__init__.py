"""REST routers by resource."""
