"""GA4GH Tool Registry Service v2 at ``/ga4gh/trs/v2``: the catalog's tool images for
workflow engines and Dockstore-style portals (see :mod:`.app`)."""
