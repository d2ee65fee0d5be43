// OpenSSL's libcrypto, for SHA-256 of inputs and weights.
#include <openssl/evp.h>
