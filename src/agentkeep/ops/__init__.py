"""Operations on a whole store: backup, restore, check, stats, optimize, prune,
export and import. Each module works on every concern through the store's backend;
the CLI commands of the same names are thin layers over these functions."""
