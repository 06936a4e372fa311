"""`reelforge serve`: an HTTP API wire-compatible with OpenAI's Videos API, with a durable job queue."""
