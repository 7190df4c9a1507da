"""L4, bulk transfer: import readers, export writers and the resumable import state, over the client interface."""
