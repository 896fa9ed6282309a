//! The cluster map: nodes, collections, shards, replica sets, primaries and
//! terms, with the epoch that versions it.
