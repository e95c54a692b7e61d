"""Step Functions as AWS runs it: the ASL parsed once, JSONata, instant waits that record what was
asked, failure injection, and the 256 KiB state data limit."""
