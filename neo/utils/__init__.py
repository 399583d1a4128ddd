"""Small shared utilities: atomic files, checkpoint I/O, drawing."""
