"""What a person sees on a terminal: ``terminal`` makes the consoles (colour, width, a closed or full
stdout), ``progress`` draws a run's progress bar and its summary table. Renderers of other commands
(``regress``, ``verify``) draw through ``terminal`` too; nothing here measures."""
