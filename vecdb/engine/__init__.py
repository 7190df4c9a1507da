"""L2, the engine: database, collections, the write and read paths, planner, optimizer and backups."""
