"""One router per endpoint family; app.py includes them."""
