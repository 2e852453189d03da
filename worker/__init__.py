"""wasmjob: durable, sandboxed WebAssembly jobs on a Celery worker fleet."""
