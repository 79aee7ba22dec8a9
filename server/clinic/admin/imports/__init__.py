"""Import of institutions, departments and users from CSV or Excel files, for an alliance
moving in: ``reader`` turns the files into rows, ``check`` validates every row against the
database and the file itself (the dry run), ``apply`` writes them in one transaction, and
``codes`` makes and hashes each new user's one-time initial password."""
