/*
 * Shared HTTP helpers.
 */
#include "core/http/http.h"

#include <string.h>

/* a name and its length, as a constant initializer */
#define HTTP_NAME(s)       \
    {                      \
        (s), sizeof(s) - 1 \
    }


const char *
sl_http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 201:
        return "Created";
    case 204:
        return "No Content";
    case 301:
        return "Moved Permanently";
    case 304:
        return "Not Modified";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 402:
        return "Payment Required";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 409:
        return "Conflict";
    case 411:
        return "Length Required";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 417:
        return "Expectation Failed";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 431:
        return "Request Header Fields Too Large";
    case 499:
        return "Client Closed Request";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 502:
        return "Bad Gateway";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    case 505:
        return "HTTP Version Not Supported";
    case 529:
        return "Overloaded";
    default:
        return "Unknown";
    }
}


bool
sl_http_is_token(sl_str_t name)
{
    /* RFC 9110 tchar: ALPHA, DIGIT and !#$%&'*+-.^_`|~ (a table: this runs per header) */
    static const uint8_t tchar[256] = {
        ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1, ['&'] = 1, ['\''] = 1, ['*'] = 1, ['+'] = 1,
        ['-'] = 1, ['.'] = 1, ['^'] = 1, ['_'] = 1, ['`'] = 1, ['|'] = 1,  ['~'] = 1, ['0'] = 1,
        ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1,  ['7'] = 1, ['8'] = 1,
        ['9'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1,  ['f'] = 1, ['g'] = 1,
        ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1,  ['n'] = 1, ['o'] = 1,
        ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1,  ['v'] = 1, ['w'] = 1,
        ['x'] = 1, ['y'] = 1, ['z'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1,  ['D'] = 1, ['E'] = 1,
        ['F'] = 1, ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1,  ['L'] = 1, ['M'] = 1,
        ['N'] = 1, ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1,  ['T'] = 1, ['U'] = 1,
        ['V'] = 1, ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1,
    };

    if (name.len == 0) {
        return false;
    }
    for (size_t i = 0; i < name.len; i++) {
        if (tchar[(unsigned char) name.p[i]] == 0) {
            return false;
        }
    }
    return true;
}


bool
sl_http_is_field_value(sl_str_t value)
{
    const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
    const uint64_t low7 = ~high;
    size_t i = 0;

    /*
     * Eight bytes a step while none is a control byte or DEL: a byte's low
     * seven bits plus 0x60 reach 0x80 from 0x20 up, plus 0x7f from 1 up (for
     * the byte XOR 0x7f, so DEL is 0), with no carry into the next byte; a
     * byte with its high bit set passes. A flagged word (a tab, or a byte
     * refused) is left to the byte loop below.
     */
    for (; i + 8 <= value.len; i += 8) {
        uint64_t w, del;

        memcpy(&w, value.p + i, 8);
        del = w ^ (0x7f * ones);
        if ((~(((w & low7) + 0x60 * ones) | w) | ~(((del & low7) + low7) | del)) & high) {
            break;
        }
    }
    for (; i < value.len; i++) {
        unsigned char ch = (unsigned char) value.p[i];

        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) {
            return false;
        }
    }
    return true;
}


bool
sl_http_is_hop_by_hop(sl_str_t name)
{
    static const sl_str_t hop[] = {
        HTTP_NAME("connection"),
        HTTP_NAME("keep-alive"),
        HTTP_NAME("proxy-connection"),
        HTTP_NAME("te"),
        HTTP_NAME("trailer"),
        HTTP_NAME("transfer-encoding"),
        HTTP_NAME("upgrade"),
        HTTP_NAME("proxy-authenticate"),
        HTTP_NAME("proxy-authorization"),
    };

    /* lengths first: most names are none of these, and differ in length */
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++) {
        if (name.len == hop[i].len && sl_mem_caseeq(name.p, hop[i].p, name.len)) {
            return true;
        }
    }
    return false;
}


const sl_http_header_t *
sl_http_find_header(const sl_http_header_t *h, size_t n, const char *name)
{
    size_t len = strlen(name);

    for (size_t i = 0; i < n; i++) {
        if (h[i].name.len == len && sl_mem_caseeq(h[i].name.p, name, len)) {
            return &h[i];
        }
    }
    return NULL;
}
