"""`mockserver record`: turn what a deployment did into scenarios (a recording proxy, or a HAR
file): see `mockserver.record.model`."""
