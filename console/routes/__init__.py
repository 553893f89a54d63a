"""The console's pages: signing in (``sign_in``), the consumer's portal (``consumer``), the case
page both parties use (``case``) and the merchant's inbox (``merchant``)."""
