"""Procrustes UMAP: the spaces laid out side by side around a reference (a joint layout, or each space's own UMAP
aligned in 2-D), coloured by factor or by per-item P@k, with the full-space Procrustes disparities."""
from contextlib import nullcontext

import pandas as pd
import streamlit as st

from core import metrics, projection, report
from ui import data, figures, sets, state
from ui.state import INSTRUCTIONS, N
from ui.widgets import finish, k_slider, models_picker, not_computed, run_fragment, seed_picker, setup

tok, ctx = setup(("ref", "colour_by", "layout"))
st.title("Procrustes UMAP")
if state.current_set() != state.DEFAULT_SET:  # a larger instruction set (issue 15): its own view
    sets.procrustes(tok, ctx)
    finish()
    st.stop()
st.caption("How each space arranges the 108 instructions, drawn so that the same instruction can be compared "
           "across spaces. The numbers (disparity and permutation p in the table below) come from Procrustes on "
           "the full embeddings; the pictures are for looking.")
present = ctx["present"]
if not present:
    st.info("No embeddings are present in `assets/`.")
    finish()
    st.stop()
if st.session_state["ref"] not in present:
    st.session_state["ref"] = ctx["default_ref"] if ctx["default_ref"] in present else present[0]
c1, c2, c3 = st.columns([2, 1, 2])
with c1:
    st.selectbox("Reference", present, format_func=lambda n: f"{n} · {ctx['families'].get(n, '')}",
                 **state.bind("w_ref_u", "ref"))
with c2:
    agent_seed = seed_picker(ctx)
with c3:
    st.segmented_control("Layout", state.LAYOUTS, format_func=figures.LAYOUTS.get,
                         **state.bind("w_layout", "layout"))
    if st.session_state["layout"] not in state.LAYOUTS:  # segmented control can be cleared
        state.select("layout", "joint")
method = st.session_state["layout"]
models = models_picker(ctx)
ref = st.session_state["ref"]
for m in models:
    if m not in present:
        not_computed(ctx, m)
names = list(dict.fromkeys([ref, *[m for m in models if m in present]]))
spaces = tuple((m, data.space_seed(ctx, m, agent_seed)) for m in names)

if method == "joint":
    st.caption(f"**Joint layout** (chosen here): every space is Procrustes-aligned onto the reference on its full "
               "embeddings (rotation/reflection; smaller spaces zero-padded, none reduced; each kept at unit size), "
               f"then all the aligned points are laid out by one UMAP (euclidean, seed {report.UMAP_SEED}). So an "
               "instruction sits in comparable places in every panel by construction: where two spaces agree after "
               "rotation their points coincide, where they disagree they lie apart (a point lies next to its twin "
               "in the reference when, after the rotation, it is nearer to it than to the other instructions). "
               "A panel shows its space as "
               "placed on this shared map, which keeps its own neighbourhoods only in part; *own* shows each "
               "space's own UMAP, whose panels share no frame. (umap-learn's AlignedUMAP, the other way, keeps each "
               "space's own UMAP and only pulls positions together: on the shipped spaces the same instruction "
               "still lay about as far apart across panels as in separate UMAPs; see "
               "`scripts/compare_layouts.py`.)")
    need = [] if data.joint_ready(tok, spaces, ref) else [data.label(m, s) for m, s in spaces]
    what = f"the joint layout of {', '.join(need)}"
else:
    st.caption(f"**Own layouts**: each space laid out by its own UMAP (cosine metric, seed {report.UMAP_SEED}), "
               "then translated, rotated/reflected (least squares) and rescaled to the size of the reference's "
               "layout. (The size is matched rather than fitted: the least-squares scale shrinks a layout that "
               "shares little structure with the reference towards a single point.) Separate UMAPs share little "
               "global structure, so a panel's 2-D disparity (in its title) is often near 1.")
    need = [data.label(m, s) for m, s in spaces if not data.layout_ready(tok, m, s)]
    what = f"UMAP layouts for {', '.join(need)}"
with st.spinner(f"Computing {what} (the first fit in a server process compiles UMAP with numba, about 10 s; "
                "cached afterwards)…") if need else nullcontext():
    al = figures.aligned(tok, spaces, ref, method)
other_opts = [m for m, _ in spaces if m != ref]
SELECTION_MODES = ("points", "box", "lasso")


def _follow(chart_key: str) -> None:
    """on_select of both charts: a selection made in one becomes the selection of every chart."""
    new = figures.selected_indices(st.session_state.get(chart_key))
    if new:
        state.select("umap_sel", new)


@st.fragment
def charts() -> None:
    """Colour, selection and the overlay's second model change only the charts: they rerun on their own."""
    c1, c2 = st.columns([3, 2])
    c1.segmented_control("Colour by", state.COLOUR_BY, **state.bind("w_colour_by", "colour_by"),
                         help=f"A factor of the instructions, or {figures.PK}: the fraction of each instruction's "
                              "k nearest neighbours in that panel's space that are also among its k nearest in the "
                              "reference (per-item P@k; the reference's panel shows the mean over the others).")
    if st.session_state["colour_by"] not in state.COLOUR_BY:  # segmented control can be cleared
        state.select("colour_by", "verb")
    colour_by = st.session_state["colour_by"]
    k = k_slider("k for P@k", where=c2) if colour_by == figures.PK else 0
    sel = tuple(i for i in st.session_state.get("umap_sel", []) if 0 <= i < N)
    st.subheader("Small multiples")
    st.plotly_chart(figures.umap_multiples(tok, spaces, ref, colour_by, sel, method, k), key="umap_multiples",
                    on_select=lambda: _follow("umap_multiples"), selection_mode=SELECTION_MODES)
    b1, b2 = st.columns([1, 4])
    if sel:
        b1.button("Clear selection", key="umap_clear", on_click=state.select, args=("umap_sel", []))
        b2.caption(f"Selected ({len(sel)}): " + "; ".join(INSTRUCTIONS[i] for i in sel[:12]) +
                   (" …" if len(sel) > 12 else ""))
    else:
        b2.caption("Drag a lasso around points in any panel (box select: the chart's toolbar, top right): the same "
                   "instructions are highlighted in every panel and in the overlay. PNG: the toolbar's camera button.")

    st.subheader("Overlay of two layouts")
    if not other_opts:
        st.info("Pick at least one model besides the reference to overlay.")
    else:
        if st.session_state.get("overlay_model") not in other_opts:
            st.session_state["overlay_model"] = other_opts[0]
        st.selectbox("Compare the reference with", other_opts, **state.bind("w_overlay", "overlay_model"))
        om = st.session_state["overlay_model"]
        st.plotly_chart(figures.umap_overlay(tok, spaces, ref, om, sel, method), key="umap_overlay",
                        on_select=lambda: _follow("umap_overlay"), selection_mode=SELECTION_MODES)
        st.caption("Blue ● the reference, orange ✕ the other model (one colour per model here: the overlay shows "
                   "how far each instruction moved; the factors are coloured in the small multiples); grey lines "
                   "join an instruction's two positions: " +
                   ("the selected instructions." if sel else f"the {figures.TOP_MOVERS} that moved most (hover for "
                    "their names; the table below ranks all). Select points to draw lines for those instead."))
    finish()


run_fragment(charts)

# ------------------------------------------------------------------------------------ statistics
st.subheader("Disparity (full embeddings)")
rows = []
ref_seed = data.space_seed(ctx, ref, agent_seed)
need = [data.label(m, s) for m, s in spaces if m != ref and not data.procrustes_ready(tok, ref, ref_seed, m, s)]
with st.spinner(f"Procrustes permutation tests ({report.N_PERM} shuffles) for {', '.join(need)}; cached "
                "afterwards…") if need else nullcontext():
    stats = {m: data.procrustes_stats(tok, ref, ref_seed, m, s) for m, s in spaces if m != ref}
for m, s in spaces:
    if m == ref:
        continue
    pr = stats[m]
    rows.append({"model": data.label(m, s), "family": ctx["families"].get(m), "disparity": pr["disparity"],
                 "permutation p": pr["p_value"], "dims used": pr["dim_used"], "PCA first": pr["pca"],
                 **({"2-D layout disparity": al.disparity[m]} if method == "own" else {})})
if rows:
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="umap_stats",
                 column_config={"disparity": st.column_config.NumberColumn(format="%.3f"),
                                "permutation p": st.column_config.NumberColumn(format="%.4f"),
                                "2-D layout disparity": st.column_config.NumberColumn(format="%.3f")})
    st.caption(f"{metrics.PROCRUSTES_CONVENTIONS}. Permutation p: (1 + #null disparity ≤ observed)/(1 + "
               f"{report.N_PERM}), the model's rows shuffled. 0 = identical up to rotation and scale, 1 = "
               "nothing in common." + (" The 2-D layout disparity is the same quantity on the UMAP layouts (display "
                                       "only)." if method == "own" else ""))

# ------------------------------------------------------------------------------------ displacement
st.subheader("Which instructions moved most")
if other_opts:
    K = 5
    dt, disp_cols, dt_csv, coords_csv = figures.umap_tables(tok, spaces, ref, K, method)
    st.caption(f"Relative displacement of each instruction: the distance between its position in the reference "
               f"layout and in each model's {'panel of the joint' if method == 'joint' else 'aligned'} layout, "
               f"divided by its mean distance to its {K} nearest "
               "neighbours in the reference layout -- i.e. how many neighbour spacings it moved "
               f"({projection.DISPLACEMENT_CONVENTIONS}). Largest mean first.")
    st.dataframe(dt, hide_index=True, key="umap_disp", height=360,
                 column_config={c: st.column_config.NumberColumn(format="%.2f") for c in [*disp_cols, "mean"]})
    c1, c2 = st.columns(2)
    c1.download_button("Download the layout coordinates (CSV)", coords_csv,
                       file_name=f"alva_umap_aligned_to_{ref}.csv", mime="text/csv", on_click="ignore")
    c2.download_button("Download displacement table (CSV)", dt_csv,
                       file_name=f"alva_umap_displacement_{ref}.csv", mime="text/csv", on_click="ignore")
    st.caption("PNG export: the camera icon in each chart's toolbar saves the chart as a PNG (kaleido, which "
               "would export from the server, is not installed).")
finish()
