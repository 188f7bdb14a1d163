"""benchkit's built-in plugins, installed as ``benchkit_plugins`` and loaded through the
``benchkit`` entry-point group exactly like a third-party package."""
