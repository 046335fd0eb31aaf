print("test worker: not yet")
