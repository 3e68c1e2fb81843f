"""Running compiled graphs: the run loop, the worker-side wrapper and the executors."""
