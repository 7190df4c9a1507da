"""Scale-out (issue 18): sharded, replicated collections. Ray is an optional extra (``vecdb[cluster]``),
imported only by the modules that run actors; the routing rules in :mod:`vecdb.cluster.sharding` are plain
Python, shared by the router and its tests."""
