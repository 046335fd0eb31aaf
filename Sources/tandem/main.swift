print("tandem: not yet")
