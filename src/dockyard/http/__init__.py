"""What the HTTP edges above the registry share (the REST API and the web UI): Range
headers over stored bytes (:mod:`.ranges`) and problem+json errors."""
