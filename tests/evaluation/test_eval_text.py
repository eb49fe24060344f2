from tuneforge.evaluation.text import exact_match, rouge_l, tokens


def test_exact_match_ignores_case_and_spacing_only():
    assert exact_match("Two years  on the FRAME.", "two years on the frame.") == 1.0
    assert exact_match("Two years on the frame", "Three years on the frame") == 0.0


def test_rouge_l_scores_word_order_overlap():
    assert rouge_l("the cat sat on the mat", "the cat sat on the mat") == 1.0
    assert rouge_l("completely different words", "the cat sat") == 0.0
    partial = rouge_l("the cat sat", "the cat sat on the mat")
    assert 0.6 < partial < 0.7  # P=1, R=0.5 -> F1=2/3


def test_chinese_is_scored_per_character():
    assert tokens("车架保修两年。") == ["车", "架", "保", "修", "两", "年"]
    # Sharing 4 of 6 characters gives partial credit; a whitespace tokenizer would give 0.
    assert 0.5 < rouge_l("车架保修三年", "车架保修两年") < 0.9
    assert tokens("Harbor City（1,299 美元）") == ["harbor", "city", "1", "299", "美", "元"]


def test_a_rows_language_is_told_by_its_script():
    from tuneforge.data.language import describe_mix, language_of, mix

    assert language_of("Two years on the frame.") == "en"
    assert language_of("车架保修两年。") == "zh"
    # A product name or a price in Latin letters does not turn a Chinese answer English, nor the reverse.
    assert language_of("潮汐通行证 Pro 每年 39 美元，可随时取消。") == "zh"
    assert language_of("The Tide Pass (潮汐) costs $39 a year and can be cancelled at any time.") == "en"
    assert language_of("東京駅で乗り換えてください。") == "ja" and language_of("감사합니다") == "ko"
    assert language_of("+1 555 0100") == "other"
    assert describe_mix(mix(["a b", "车", "c d", "e"])) == "75% English, 25% Chinese"
