"""Teaching broadcasts: sessions a presenter streams to invited member sites, with attendance,
questions and recordings. The relay itself lives in ``yilian.signaling.sfu``; this package
decides who may present and watch, and keeps what happened."""
