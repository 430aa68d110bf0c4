"""Run any program that speaks the seed's JSON stdin/stdout protocol as a child process."""
