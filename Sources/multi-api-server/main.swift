print("multi-api-server: not yet")
