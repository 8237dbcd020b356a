-- What a guard going to the customer's home needs beside the address, kept by the customer:
-- a phone number to call on the way, how to get in, who holds a key. The guard center sees
-- them while one of the customer's requests is open.
ALTER TABLE accounts ADD COLUMN phone TEXT;
ALTER TABLE accounts ADD COLUMN entry_notes TEXT;
ALTER TABLE accounts ADD COLUMN key_holder TEXT;
