"""Process supervision of the ``feel`` command: SuperLinks, SuperNodes, orphans, app dirs."""
