/*
 * fuzz_yaml.c: libFuzzer entry point for the parser of outside input that
 * every write goes through: YAML text -> documents -> objects of a kind.
 *
 * Each input is parsed as a stream; every document is checked as an
 * object of one kind (picked by the first byte, so all the kind tables are
 * reached), and whatever is accepted is emitted and parsed again, which
 * must give an equal tree.
 */
#include <stdint.h>
#include <stdlib.h>

#include "object.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ynode **docs = NULL;
	size_t n = 0, nkinds = 0;
	struct err e;

	while (kinds[nkinds])
		nkinds++;
	if (size == 0)
		return 0;
	const struct kind *k = kinds[data[0] % nkinds];
	if (y_parse((const char *)data + 1, size - 1, &docs, &n, &e) < 0)
		return 0;
	for (size_t i = 0; i < n; i++) {
		struct ynode *doc = docs[i];
		if (doc->type == Y_MAP &&
		    obj_normalize(k, k->namespaced ? "default" : "", NULL, doc, &e) == 0) {
			struct strbuf sb = {0};
			struct ynode **again = NULL;
			size_t m = 0;
			y_emit(doc, &sb);
			if (y_parse(sb.buf, sb.len, &again, &m, &e) < 0 || m != 1 ||
			    !y_equal(doc, again[0]))
				abort(); /* what we emit must read back the same */
			for (size_t j = 0; j < m; j++)
				y_free(again[j]);
			free(again);
			sb_free(&sb);
		}
		y_free(doc);
	}
	free(docs);
	return 0;
}
