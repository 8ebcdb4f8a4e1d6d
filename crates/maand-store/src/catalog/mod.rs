//! Catalog rows (workers, jobs, allocations, hashes, files): typed reads and writes on a transaction.
