"""Measuring inside a worker or a pinned child: ``timing`` (first call, warm-up, blocked synchronised samples,
adaptive stopping), ``memory`` (resettable peak resident memory), ``device`` (what is read after the samples:
device peak, idle sync cost, device-event times), and the machine's own kernels: ``calibrate`` (the matmul
peak) and ``bandwidth`` (a copy far beyond the caches). Never prints, never imports a framework itself."""
