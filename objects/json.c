/*
 * json.c: a document tree as JSON, for the programs that read only JSON
 * (crun's config.json, the CNI plugins' configuration).
 *
 * JSON is YAML, so y_parse() reads it back; this is the other direction.
 * Map keys keep their order in the tree. A float is written as its text,
 * which YAML's core schema already restricts to JSON's number syntax
 * except for .inf and .nan: those become null.
 */
#include "doc.h"

#include <string.h>

static void json_string(const char *s, struct strbuf *out)
{
	sb_puts(out, "\"");
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		switch (ch) {
		case '"':
			sb_puts(out, "\\\"");
			break;
		case '\\':
			sb_puts(out, "\\\\");
			break;
		case '\n':
			sb_puts(out, "\\n");
			break;
		case '\r':
			sb_puts(out, "\\r");
			break;
		case '\t':
			sb_puts(out, "\\t");
			break;
		default:
			if (ch < 0x20)
				sb_printf(out, "\\u%04x", ch);
			else
				sb_append(out, s, 1);
		}
	}
	sb_puts(out, "\"");
}

static bool json_number(const char *s)
{
	return s[strspn(s, "+-0123456789.eE")] == '\0' && strpbrk(s, "0123456789");
}

void y_emit_json(const struct ynode *n, struct strbuf *out)
{
	if (!n) {
		sb_puts(out, "null");
		return;
	}
	switch (n->type) {
	case Y_NULL:
		sb_puts(out, "null");
		break;
	case Y_BOOL:
		sb_puts(out, n->i ? "true" : "false");
		break;
	case Y_INT:
		sb_printf(out, "%lld", (long long)n->i);
		break;
	case Y_FLOAT:
		sb_puts(out, json_number(n->str) ? n->str + (n->str[0] == '+') : "null");
		break;
	case Y_STR:
		json_string(n->str, out);
		break;
	case Y_MAP:
		sb_puts(out, "{");
		for (size_t i = 0; i < n->n; i++) {
			if (i)
				sb_puts(out, ",");
			json_string(n->keys[i], out);
			sb_puts(out, ":");
			y_emit_json(n->v[i], out);
		}
		sb_puts(out, "}");
		break;
	case Y_SEQ:
		sb_puts(out, "[");
		for (size_t i = 0; i < n->n; i++) {
			if (i)
				sb_puts(out, ",");
			y_emit_json(n->v[i], out);
		}
		sb_puts(out, "]");
		break;
	}
}
