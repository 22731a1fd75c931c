print("fieldops")
